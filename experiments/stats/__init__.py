"""funnelsim package."""
