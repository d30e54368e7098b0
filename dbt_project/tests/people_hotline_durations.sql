-- Hotline durations are never negative, closure time is null exactly when it cannot be measured
-- (not closed, or closed_at before received_at), and an answered ticket has a response no later than
-- its closure.
select ticket_id, received_at, closed_at, response_hours, closure_hours, closed_before_received
from {{ get_where_subquery(ref('fct_hotline_ticket')) }}  {#- the run's days (test_window.sql) #}
where response_hours < 0
    or closure_hours < 0
    or (closed_before_received and closure_hours is not null)
    or (closed_at is not null and not closed_before_received and closure_hours is null)
    or (closure_hours is not null and (response_hours is null or response_hours > closure_hours))
