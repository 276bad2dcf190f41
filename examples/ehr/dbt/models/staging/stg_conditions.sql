select
    {{ text('PATIENT') }} as patient_id,
    {{ text('ENCOUNTER') }} as encounter_id,
    {{ text('CODE') }} as condition_code,
    {{ text('DESCRIPTION') }} as condition_description,
    {{ as_date('START') }} as onset_date,
    {{ as_date('STOP') }} as resolved_date,
    {{ as_date('STOP') }} is null as is_active,
    cast(ingest_date as varchar) as ingest_date
from {{ source('ehr', 'ehr_conditions') }}
