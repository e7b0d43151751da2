from mailstify_servicekit.alembic_env import run_migrations

run_migrations()
