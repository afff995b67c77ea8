-- Tables change rarely (added, renamed, re-keyed): let them move the menu version too, so a process can
-- keep the tables in memory beside the menu and resolve a table code without a query per request.
CREATE TRIGGER menu_v_tables_i AFTER INSERT ON tables BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_tables_u AFTER UPDATE ON tables BEGIN UPDATE menu_meta SET version = version + 1; END;
CREATE TRIGGER menu_v_tables_d AFTER DELETE ON tables BEGIN UPDATE menu_meta SET version = version + 1; END;
