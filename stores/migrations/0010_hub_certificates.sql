-- Hubs that sign in with an X.509 client certificate signed by the stack's CA (`hubs add
-- --cert`): their login is the certificate's CN, checked by the broker's certificate
-- listener, so they have a serial and no password. Revoked ones go on the CRL.
ALTER TABLE hub_credentials ALTER COLUMN password_hash DROP NOT NULL;
ALTER TABLE hub_credentials ADD COLUMN cert_serial numeric(50, 0) UNIQUE;
ALTER TABLE hub_credentials ADD CONSTRAINT hub_credentials_password_or_certificate
    CHECK ((password_hash IS NULL) <> (cert_serial IS NULL));
