-- One row per encounter, latest delivery wins.
with latest as (
    {{ latest_delivery(source('ehr', 'ehr_encounters'), 'Id') }}
)

select
    {{ text('Id') }} as encounter_id,
    {{ text('PATIENT') }} as patient_id,
    {{ text('ORGANIZATION') }} as organization_id,
    {{ text('PAYER') }} as payer_id,
    lower({{ text('ENCOUNTERCLASS') }}) as encounter_class,
    {{ text('CODE') }} as encounter_code,
    {{ text('DESCRIPTION') }} as encounter_description,
    {{ as_timestamp('START') }} as started_at,
    {{ as_timestamp('STOP') }} as stopped_at,
    {{ as_double('BASE_ENCOUNTER_COST') }} as base_cost,
    {{ as_double('TOTAL_CLAIM_COST') }} as total_claim_cost,
    {{ as_double('PAYER_COVERAGE') }} as payer_coverage,
    {{ text('REASONCODE') }} as reason_code,
    {{ text('REASONDESCRIPTION') }} as reason_description,
    cast(ingest_date as varchar) as ingest_date
from latest
