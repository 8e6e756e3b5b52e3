"""spaCy components, one module per factory. Import the modules to register the factories."""
