{#- Each expectation suite's score per run, for the resource catalog: the counting rule is the scorecards'
    macro (dbt_project/macros/expectation_scores.sql). `table` is quality.expectation_results or a published
    version's meta.check_results (same columns). -#}
{%- from 'expectation_scores.sql' import expectation_counts -%}
select
    suite,
    run_id,
    cast(max(evaluated_at) as varchar) as evaluated_at,
    {{ expectation_counts() }}
from {{ table }}
group by suite, run_id
