-- One row per patient: who they are (no direct identifiers) and how they use care.
with encounters as (
    select
        patient_id,
        count(*) as encounter_count,
        min(started_at) as first_encounter_at,
        max(started_at) as last_encounter_at,
        sum(total_claim_cost) as total_claim_cost
    from {{ ref('int_encounters_enriched') }}
    group by patient_id
),

active_conditions as (
    select patient_id, count(distinct condition_code) as active_condition_count
    from {{ ref('stg_conditions') }}
    where is_active
    group by patient_id
),

patients as (
    select
        *,
        cast(floor(date_diff('day', birth_date, coalesce(death_date, current_date)) / 365.25)
            as integer) as age
    from {{ ref('stg_patients') }}
)

select
    p.patient_id,
    p.gender,
    p.age,
    case
        when p.age < 18 then '0-17'
        when p.age < 40 then '18-39'
        when p.age < 65 then '40-64'
        else '65+'
    end as age_band,
    p.race,
    p.ethnicity,
    p.county,
    p.death_date is not null as is_deceased,
    coalesce(e.encounter_count, 0) as encounter_count,
    e.first_encounter_at,
    e.last_encounter_at,
    coalesce(e.total_claim_cost, 0) as total_claim_cost,
    coalesce(c.active_condition_count, 0) as active_condition_count
from patients as p
left join encounters as e on e.patient_id = p.patient_id
left join active_conditions as c on c.patient_id = p.patient_id
