-- Every operator spatial unit placed on the pool grid, computed once per unit (not per hourly row), for
-- every presence feed of the catalog by its declared unit (macros/operator_feeds.sql operator_units): an H3
-- index (kept when valid at var('grid_resolution')), a GCJ-02 or WGS-84 position such as a grid square's
-- centre, or a base-station cell of the operator's cell_sites feed. grid_id is null, with the reason in
-- `problem`, for a unit that cannot be placed.
{{ operator_units() }}
