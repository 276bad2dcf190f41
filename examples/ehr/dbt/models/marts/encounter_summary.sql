-- One row per encounter, ready for utilisation and cost dashboards.
select
    encounter_id,
    patient_id,
    encounter_class,
    encounter_description,
    cast(started_at as date) as encounter_date,
    duration_minutes,
    patient_gender,
    patient_age_at_encounter,
    condition_count,
    observation_count,
    medication_count,
    total_claim_cost,
    payer_coverage,
    total_claim_cost - payer_coverage as patient_cost,
    medication_cost
from {{ ref('int_encounters_enriched') }}
