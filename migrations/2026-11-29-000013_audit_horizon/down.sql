DROP FUNCTION audit.write_horizon();
