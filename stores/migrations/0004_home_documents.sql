-- A home's own documents (issue #13): its mode (home, away, night) and its settings (time
-- zone, location), kept beside groups, scenes and automations and published the same way.
ALTER TABLE gateway_documents DROP CONSTRAINT IF EXISTS gateway_documents_kind_check;
ALTER TABLE gateway_documents
    ADD CONSTRAINT gateway_documents_kind_check
    CHECK (kind IN ('group', 'scene', 'automation', 'home'));
