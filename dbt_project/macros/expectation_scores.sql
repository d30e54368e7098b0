{#- The quality score of a group of expectation results: how many were evaluated and passed (the score is
    expectations_passed / expectations_evaluated) and how many failed, by severity.

    One rule for two readers, so a score means the same wherever it is shown: the scorecards
    (models/pool/quality/quality_scorecard_feed_daily.sql, per feed and day) and the resource catalog
    (citybrain/resource_catalog/sql/suite_scores.sql, per suite and run, over quality.expectation_results
    or a published version's meta.check_results). The catalog renders this file with plain Jinja, without
    dbt, and at the end of a run, after the pool's checks the scorecard models (built earlier, in the
    first dbt step) cannot have seen: keep it plain SQL, no dbt functions. -#}
{% macro expectation_counts(success='success', severity='severity') -%}
    count(*) as expectations_evaluated,
    count(*) filter (where {{ success }}) as expectations_passed,
    count(*) filter (where not {{ success }} and {{ severity }} = 'blocking') as blocking_failed,
    count(*) filter (where not {{ success }} and {{ severity }} = 'warning') as warnings_failed
{%- endmacro %}
