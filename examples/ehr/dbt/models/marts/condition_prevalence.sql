-- One row per condition code: how many patients have (or had) it, out of all patients.
with population as (
    select count(*) as patient_count from {{ ref('stg_patients') }}
)

select
    c.condition_code,
    min(c.condition_description) as condition_description,
    count(distinct c.patient_id) as patient_count,
    count(distinct case when c.is_active then c.patient_id end) as active_patient_count,
    round(100.0 * count(distinct c.patient_id) / max(pop.patient_count), 2) as prevalence_pct
from {{ ref('stg_conditions') }} as c
cross join population as pop
group by c.condition_code
