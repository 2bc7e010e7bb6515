-- Dashboards and their widgets.
--
-- Portable to PostgreSQL: ids are UUID strings, times are epoch milliseconds (BIGINT), JSON is
-- kept as TEXT and parsed by the server.

CREATE TABLE dashboards (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

CREATE TABLE widgets (
    widget_id TEXT PRIMARY KEY,
    dashboard_id TEXT NOT NULL REFERENCES dashboards (id) ON DELETE CASCADE,
    -- Order of the widget within its dashboard; gaps are allowed.
    position BIGINT NOT NULL,
    metric_name TEXT NOT NULL,
    -- The aggregation's registry name (`count`, `sum`, ...).
    aggregation TEXT NOT NULL,
    window_seconds BIGINT NOT NULL,
    refresh_interval_seconds BIGINT NOT NULL,
    -- JSON object of tag -> value.
    filter TEXT NOT NULL,
    -- Any JSON, as the client sent it.
    display_config TEXT NOT NULL,
    -- Version of the widget's query; bumped when metric, aggregation, window or filter change.
    generation BIGINT NOT NULL
);

CREATE INDEX widgets_by_dashboard ON widgets (dashboard_id, position);
