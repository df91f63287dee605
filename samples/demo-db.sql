-- The demo database behind the gate: fake people with card numbers, SSNs and
-- e-mails (all invented; card numbers are public test numbers that pass Luhn),
-- orders, and an analytics schema. Loaded by scripts/pg-test-cluster.
DROP SCHEMA IF EXISTS analytics CASCADE;
DROP TABLE IF EXISTS public.order_items, public.orders, public.payments, public.customers CASCADE;

CREATE TABLE public.customers (
    id          integer PRIMARY KEY,
    full_name   text NOT NULL,
    email       text NOT NULL,
    phone       text,
    ssn         text,
    card_number text,
    country     text NOT NULL,
    created_at  timestamptz NOT NULL
);

INSERT INTO public.customers
SELECT i,
       (ARRAY['Ada','Grace','Alan','Edsger','Barbara','Donald','Frances','Ken','Radia','Leslie'])[1 + i % 10] || ' ' ||
       (ARRAY['Lovelace','Hopper','Turing','Dijkstra','Liskov','Knuth','Allen','Thompson','Perlman','Lamport'])[1 + (i / 10) % 10],
       lower((ARRAY['ada','grace','alan','edsger','barbara','donald','frances','ken','radia','leslie'])[1 + i % 10]) || i || '@example.com',
       '+1-555-' || lpad((1000 + i)::text, 4, '0'),
       lpad((100 + i % 800)::text, 3, '0') || '-' || lpad((10 + i % 89)::text, 2, '0') || '-' || lpad((1000 + i)::text, 4, '0'),
       (ARRAY['4111111111111111','5555555555554444','378282246310005','6011111111111117','4012888888881881'])[1 + i % 5],
       (ARRAY['US','DE','FR','JP','BR'])[1 + i % 5],
       timestamptz '2026-01-01 00:00:00+00' + (i || ' hours')::interval
FROM generate_series(1, 200) AS i;

CREATE TABLE public.orders (
    id          integer PRIMARY KEY,
    customer_id integer NOT NULL REFERENCES public.customers(id),
    status      text NOT NULL,
    total_cents integer NOT NULL,
    placed_at   timestamptz NOT NULL
);

INSERT INTO public.orders
SELECT i, 1 + i % 200, (ARRAY['placed','paid','shipped','delivered','refunded'])[1 + i % 5],
       500 + (i * 7919) % 50000, timestamptz '2026-02-01 00:00:00+00' + (i || ' minutes')::interval
FROM generate_series(1, 2000) AS i;

CREATE SCHEMA analytics;

CREATE TABLE analytics.daily_revenue AS
SELECT date_trunc('day', placed_at)::date AS day, count(*) AS orders, sum(total_cents) AS revenue_cents
FROM public.orders GROUP BY 1;

CREATE TABLE analytics.events (
    id         bigint PRIMARY KEY,
    event_type text NOT NULL,
    country    text NOT NULL,
    occurred_at timestamptz NOT NULL
);

INSERT INTO analytics.events
SELECT i, (ARRAY['page_view','signup','checkout','search','logout'])[1 + i % 5], (ARRAY['US','DE','FR','JP','BR'])[1 + i % 5],
       timestamptz '2026-03-01 00:00:00+00' + (i || ' seconds')::interval
FROM generate_series(1, 5000) AS i;
