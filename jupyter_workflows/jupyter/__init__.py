"""The notebook surface: magics, the live run widget, rich displays. Imports Jupyter things;
the core never imports this package."""
