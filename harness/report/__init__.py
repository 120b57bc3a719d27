"""Report renderers: HTML, Markdown and terminal, from results files only."""
