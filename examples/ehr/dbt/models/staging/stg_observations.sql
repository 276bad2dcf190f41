select
    {{ as_timestamp('DATE') }} as observed_at,
    {{ text('PATIENT') }} as patient_id,
    {{ text('ENCOUNTER') }} as encounter_id,
    {{ text('CATEGORY') }} as category,
    {{ text('CODE') }} as observation_code,
    {{ text('DESCRIPTION') }} as observation_description,
    {{ text('VALUE') }} as value_text,
    case when {{ text('TYPE') }} = 'numeric' then {{ as_double('VALUE') }} end as value_number,
    {{ text('UNITS') }} as units,
    {{ text('TYPE') }} as value_type,
    cast(ingest_date as varchar) as ingest_date
from {{ source('ehr', 'ehr_observations') }}
