"""Schedule-figure configs (`python -m jaxprune.schedules`)."""
