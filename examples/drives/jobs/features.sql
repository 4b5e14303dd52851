-- Drive features, shared by jobs/features_duckdb.py and jobs/features_spark.py.
-- Plain SQL both engines read the same way: times are epoch seconds, so hour and weekday
-- are arithmetic (1970-01-01 was a Thursday: +3 makes Monday 0). Divisions are on DOUBLE:
-- Spark reads a literal like 60.0 as a DECIMAL and would round to 6 digits.
SELECT
    drive_id,
    driver_id,
    CAST(FLOOR((start_ts % 86400) / 3600) AS INT)                      AS start_hour,
    CAST((FLOOR(start_ts / 86400) + 3) % 7 AS INT)                      AS weekday,
    CASE WHEN (FLOOR(start_ts / 86400) + 3) % 7 >= 5 THEN 1 ELSE 0 END  AS weekend,
    distance_km,
    CAST(duration_s AS DOUBLE) / 60                                     AS duration_min,
    distance_km / (CAST(duration_s AS DOUBLE) / 3600)                   AS speed_kmh,
    to_office_km,
    CASE WHEN vehicle = 'van' THEN 1 ELSE 0 END                         AS van,
    AVG(distance_km) OVER (PARTITION BY driver_id)                      AS driver_avg_km,
    CASE WHEN purpose = 'business' THEN 1 ELSE 0 END                    AS business
FROM drives
