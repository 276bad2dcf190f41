{#- Casts that behave the same on DuckDB and Athena. The DuckDB crawler types CSV columns from
    the data (dates, numbers); a Glue crawler often leaves them as strings, where '' means
    missing. Going through trimmed text first makes both give the same typed value or NULL. -#}

{% macro text(column) -%}
    nullif(trim(cast({{ column }} as varchar)), '')
{%- endmacro %}

{% macro as_date(column) -%}
    cast({{ text(column) }} as date)
{%- endmacro %}

{% macro as_timestamp(column) -%}
    cast({{ text(column) }} as timestamp)
{%- endmacro %}

{% macro as_double(column) -%}
    cast({{ text(column) }} as double)
{%- endmacro %}

{% macro as_integer(column) -%}
    cast({{ text(column) }} as integer)
{%- endmacro %}
