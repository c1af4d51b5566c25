-- A signed handover is never changed or removed through SQL; editing the file by other means is what
-- `kawal audit verify` catches (the row no longer matches its audit record).
CREATE TRIGGER IF NOT EXISTS handovers_no_update BEFORE UPDATE ON handovers
BEGIN SELECT RAISE(ABORT, 'handovers are append-only'); END;
CREATE TRIGGER IF NOT EXISTS handovers_no_delete BEFORE DELETE ON handovers
BEGIN SELECT RAISE(ABORT, 'handovers are append-only'); END;
