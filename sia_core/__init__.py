"""SIA Explorer's engine: data, models, attacks, training and the four lenses, without Streamlit."""

__version__ = "0.1.0"
