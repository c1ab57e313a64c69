-- Delivery shapes: how each webhook's request is made (method, URL and body templates, format,
-- retries, rate limit, alerts), its endpoint credentials (write-only), where its failure alerts
-- stand, and the first KiB of each answer in the attempt log. JSON as text; '{}' is today's
-- behaviour (the envelope, POSTed as JSON, the global retry schedule).
ALTER TABLE webhooks ADD COLUMN options text NOT NULL DEFAULT '{}';
ALTER TABLE webhooks ADD COLUMN credentials text NOT NULL DEFAULT '{}';
ALTER TABLE webhooks ADD COLUMN alert_state text NOT NULL DEFAULT '{}';
ALTER TABLE deliveries ADD COLUMN response text;
