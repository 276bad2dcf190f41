select
    {{ text('PATIENT') }} as patient_id,
    {{ text('ENCOUNTER') }} as encounter_id,
    {{ text('PAYER') }} as payer_id,
    {{ text('CODE') }} as medication_code,
    {{ text('DESCRIPTION') }} as medication_description,
    {{ as_timestamp('START') }} as started_at,
    {{ as_timestamp('STOP') }} as stopped_at,
    {{ as_integer('DISPENSES') }} as dispenses,
    {{ as_double('BASE_COST') }} as base_cost,
    {{ as_double('TOTALCOST') }} as total_cost,
    {{ text('REASONCODE') }} as reason_code,
    cast(ingest_date as varchar) as ingest_date
from {{ source('ehr', 'ehr_medications') }}
