# OpenBao (or Vault) server for images/compose.yaml: file storage in the vault-data volume, TLS
# with a certificate from your private CA. Initialise and unseal it once (bao operator init), then
# give the control room a token with the policy the README's "Vault" section lists.
storage "file" {
  path = "/openbao/file"
}
listener "tcp" {
  address       = "0.0.0.0:8200"
  tls_cert_file = "/openbao/config/tls/vault.crt"
  tls_key_file  = "/openbao/config/tls/vault.key"
}
api_addr      = "https://vault:8200"
disable_mlock = false
ui            = false
