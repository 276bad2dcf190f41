-- One row per patient. A patient delivered again in a later extract keeps its latest version;
-- rows without an Id (only possible in a file a reviewer approved from quarantine) are dropped.
with latest as (
    {{ latest_delivery(source('ehr', 'ehr_patients'), 'Id') }}
)

select
    {{ text('Id') }} as patient_id,
    {{ text('MRN') }} as mrn,
    {{ as_date('BIRTHDATE') }} as birth_date,
    {{ as_date('DEATHDATE') }} as death_date,
    {{ text('PREFIX') }} as name_prefix,
    {{ text('FIRST') }} as first_name,
    {{ text('LAST') }} as last_name,
    {{ text('MARITAL') }} as marital_status,
    {{ text('RACE') }} as race,
    {{ text('ETHNICITY') }} as ethnicity,
    upper({{ text('GENDER') }}) as gender,
    {{ text('CITY') }} as city,
    {{ text('COUNTY') }} as county,
    {{ text('STATE') }} as state,
    -- A crawler types ZIP codes as numbers and drops their leading zero.
    lpad({{ text('ZIP') }}, 5, '0') as zip,
    {{ as_double('LAT') }} as latitude,
    {{ as_double('LON') }} as longitude,
    cast(ingest_date as varchar) as ingest_date
from latest
