"""What the drives jobs share: the feature columns the model reads, in order."""

FEATURES = [
    "start_hour",
    "weekday",
    "weekend",
    "distance_km",
    "duration_min",
    "speed_kmh",
    "to_office_km",
    "van",
    "driver_avg_km",
]
LABEL = "business"
