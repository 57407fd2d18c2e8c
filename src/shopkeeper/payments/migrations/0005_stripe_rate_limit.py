"""The shared Stripe rate limiter's buckets and the one function that reserves a send time.

`stripe_rate_reserve(buckets, intervals, tolerances, max_wait, counted)` is the generic cell rate
algorithm (GCRA) over several buckets at once (the account's and the endpoint's), in one
statement on the limiter's own autocommit connection: it locks the rows in name order, picks the
earliest time every bucket allows, and moves each bucket's clock past it. It returns the seconds
to wait before sending, or NULL (nothing reserved) when that is longer than `max_wait`.
`counted` (0 or 1) is added to the request counters: 0 for a request taking a new turn after
waking up too late for its first.
"""

from django.db import migrations, models

RESERVE = """
CREATE OR REPLACE FUNCTION stripe_rate_reserve(
    p_buckets text[],
    p_intervals double precision[],
    p_tolerances double precision[],
    p_max_wait double precision,
    p_counted integer
) RETURNS double precision
LANGUAGE plpgsql AS $$
DECLARE
    started timestamptz;
    send_at timestamptz;
    allowed timestamptz;
    waited double precision;
BEGIN
    INSERT INTO payments_stripe_rate_bucket
        (name, theoretical_arrival, requests, waits, wait_seconds, rate_limited)
    SELECT bucket, '-infinity', 0, 0, 0, 0 FROM unnest(p_buckets) AS bucket
    ON CONFLICT (name) DO NOTHING;
    PERFORM 1 FROM payments_stripe_rate_bucket
        WHERE name = ANY(p_buckets) ORDER BY name FOR UPDATE;
    started := clock_timestamp();
    send_at := started;
    FOR i IN 1 .. cardinality(p_buckets) LOOP
        SELECT theoretical_arrival - make_interval(secs => p_tolerances[i]) INTO allowed
            FROM payments_stripe_rate_bucket WHERE name = p_buckets[i];
        send_at := GREATEST(send_at, allowed);
    END LOOP;
    waited := EXTRACT(EPOCH FROM send_at - started);
    IF waited > p_max_wait THEN
        RETURN NULL;
    END IF;
    FOR i IN 1 .. cardinality(p_buckets) LOOP
        UPDATE payments_stripe_rate_bucket SET
            theoretical_arrival =
                GREATEST(theoretical_arrival, send_at) + make_interval(secs => p_intervals[i]),
            requests = requests + p_counted,
            waits = waits + ((waited > 0)::int * p_counted),
            wait_seconds = wait_seconds + waited
        WHERE name = p_buckets[i];
    END LOOP;
    RETURN waited;
END
$$;
"""

DROP = (
    "DROP FUNCTION IF EXISTS stripe_rate_reserve"
    "(text[], double precision[], double precision[], double precision, integer);"
)


class Migration(migrations.Migration):
    dependencies = [("payments", "0004_payment_created_at_index")]

    operations = [
        migrations.CreateModel(
            name="StripeRateBucket",
            fields=[
                ("name", models.CharField(max_length=200, primary_key=True, serialize=False)),
                ("theoretical_arrival", models.DateTimeField()),
                ("requests", models.BigIntegerField(default=0)),
                ("waits", models.BigIntegerField(default=0)),
                ("wait_seconds", models.FloatField(default=0.0)),
                ("rate_limited", models.BigIntegerField(default=0)),
            ],
            options={"db_table": "payments_stripe_rate_bucket"},
        ),
        migrations.RunSQL(RESERVE, DROP),
    ]
