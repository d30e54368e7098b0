{#-
  Complementary small-cell suppression (docs/GOVERNANCE.md "Small-cell suppression"), set-based.

  A published total minus the published cells of the group it sums gives the sum of the group's suppressed
  cells. So hiding the cells below k (primary suppression) is not enough: in every margin group, i.e. every
  set of cells whose total is published or derivable from published tables, the suppressed cells must be
  either none, or at least two whose values sum to at least k. Then any one of them may be anywhere between
  0 and k as far as the published numbers tell, and nothing is learnt about a cell of 1..k-1.

  complementary_suppression(cells, keys, value, groups, also=[], forced=none, rounds=1, out='protected')
  emits CTEs (to be placed inside a WITH list, followed by a comma or the final select), the last named
  `out`: every column of the CTE `cells` plus `suppressed` (boolean).
    cells   name of a CTE with one row per cell: the `keys`, the group columns and `value`;
    keys    the columns that identify a cell;
    value   the count (a non-negative number; an estimate may be fractional);
    groups  list of margin groups, each a list of columns (a cell belongs to one group per list);
    also    further count columns published with `value` (e.g. the raw subscribers behind an estimate): a cell
            is small when any of them is above 0 and below k;
    forced  optional boolean column of `cells`: suppress the cell whatever its value (a cell suppressed in
            an earlier build of the same day stays suppressed, so two versions cannot be differenced);
    rounds  how many times to go through `groups`. One margin family (groups that partition the cells)
            is done in one round. Two crossed families (OD: by origin and by destination) may need more:
            a complement added for a row can leave its column with a single suppressed cell.
  Each step, in every group with suppressed cells that breaks the rule, the smallest positive cell not yet
  suppressed is suppressed too (ties by key: the same data always gives the same pattern). Every such cell
  is at least k, since every smaller positive cell is already suppressed, so one is enough for its group.
  With crossed families a candidate that already has a suppressed cell in its other groups is preferred, so
  a complement closes a need instead of opening one. A group whose positive cells are all suppressed and
  still break the rule cannot be protected by its cells (its total is itself small): the blocking check at
  publication (citybrain/quality/small_cells.py) finds it and stops the publication.
  Spark: window functions and row_number only, each step reading the one before once (a join back to an
  earlier step would be inlined by Spark again and again: the plan grew exponentially with the steps).
-#}
{% macro complementary_suppression(cells, keys, value, groups, also=[], forced=none, rounds=1, out='protected') -%}
    {%- set k = small_cell_k() -%}
    {%- set steps = [] -%}
    {%- for _ in range(rounds) -%}{%- for group in groups -%}{%- do steps.append(group) -%}{%- endfor -%}{%- endfor -%}
{{ out }}_s0 as (
    select
        {{ cells }}.*,
        {% for count in [value] + also %}(({{ count }}) > 0 and ({{ count }}) < {{ k }}) or {% endfor -%}
        {% if forced %}coalesce({{ forced }}, false){% else %}false{% endif %} as suppressed_0
    from {{ cells }}
),
{%- for group in steps %}
    {%- set i = loop.index %}
    {%- set prev = out ~ '_s' ~ (i - 1) %}
    {%- set flag = 'suppressed_' ~ (i - 1) %}
    {%- set others = [] -%}
    {%- for other in groups if other != group -%}{%- do others.append(other) -%}{%- endfor %}
{#- Window functions over the step before, never a join back to it: each step reads the one before once, so
    the plan grows linearly with the steps (joins of CTEs would be inlined on Spark, exponentially). #}
{{ out }}_w{{ i }} as (
    select
        c.*,
        sum(case when c.{{ flag }} then 1 else 0 end) over (partition by {% for column in group %}c.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}) as hidden_cells_{{ i }},
        sum(case when c.{{ flag }} then c.{{ value }} else 0 end) over (partition by {% for column in group %}c.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}) as hidden_sum_{{ i }}
        {%- for other in others %},
        max(case when c.{{ flag }} then 1 else 0 end) over (partition by {% for column in other %}c.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}) as busy_{{ i }}_{{ loop.index }}
        {%- endfor %}
    from {{ prev }} as c
),
{{ out }}_r{{ i }} as (
    select
        w.*,
        (w.hidden_cells_{{ i }} = 1 or (w.hidden_cells_{{ i }} > 1 and w.hidden_sum_{{ i }} < {{ k }}))
            and not w.{{ flag }} and w.{{ value }} > 0 as candidate_{{ i }},
        row_number() over (
            partition by {% for column in group %}w.{{ column }}{% if not loop.last %}, {% endif %}{% endfor %}
            order by
                case when not w.{{ flag }} and w.{{ value }} > 0 then 0 else 1 end,
                {% for other in others %}w.busy_{{ i }}_{{ loop.index }} desc, {% endfor %}
                w.{{ value }}{% for key in keys %}, w.{{ key }}{% endfor %}
        ) as pick_{{ i }}
    from {{ out }}_w{{ i }} as w
),
{{ out }}_s{{ i }} as (
    select r.*, r.{{ flag }} or coalesce(r.candidate_{{ i }} and r.pick_{{ i }} = 1, false) as suppressed_{{ i }}
    from {{ out }}_r{{ i }} as r
),
{%- endfor %}
{{ out }} as (
    select *, suppressed_{{ steps | length }} as suppressed from {{ out }}_s{{ steps | length }}
)
{%- endmacro %}

{#-
  was_suppressed(alias, flag, keys, day_column): a boolean expression, true for a cell of `alias` that an
  earlier build of this (incremental, daily) model published with `flag` set on the same day. Passed as
  `forced` to complementary_suppression, it keeps a day's suppression pattern when the day is rebuilt (a
  late delivery): otherwise a cell hidden in one version and shown in the next, or two versions choosing
  different complements, would give a hidden value back. `false` on a first or full build, while the table
  predates the flag column, and on Spark, whose insert_overwrite cannot read the table it overwrites (a
  limit noted in docs/GOVERNANCE.md).
-#}
{% macro was_suppressed(alias, flag, keys, day_column) -%}
    {%- set columns = [] -%}
    {%- if execute and is_incremental() and target.type != 'spark' -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | map('lower') | list -%}
    {%- endif -%}
    {%- if flag | lower in columns -%}
        exists (
            select 1 from {{ this }} as earlier
            where earlier.{{ flag }}
                and {{ citybrain.in_run_window('earlier.' ~ day_column) }}  {#- lets the scan skip other days #}
                and earlier.{{ day_column }} = {{ alias }}.{{ day_column }}
                {%- for key in keys %}
                and earlier.{{ key }} = {{ alias }}.{{ key }}
                {%- endfor %}
        )
    {%- else -%}
        false
    {%- endif -%}
{%- endmacro %}
