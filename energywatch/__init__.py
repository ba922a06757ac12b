"""EnergyWatch: online energy and VOC monitoring for key energy-using units, as a stream."""

__version__ = "0.1.0"
