"""The HTTP annotation service: a FastAPI shell over ``nlp.Pipeline`` (``pip install notes2fhir[service]``).

It never imports spaCy; see ``DESIGN.md`` §5–6.
"""
