// A fixed P-256 key for the fuzz target and its seed generator: the seeds are
// signed with it, so the fuzzer also explores the paths behind a signature that
// verifies. Test-only; never use it for anything else.
#pragma once

namespace logseal::fuzz {

inline constexpr const char* kFuzzPrivateKeyPem =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgbM97/4MVMwr9+guN\n"
    "228TfBTxXx62Re3rO8hL/Vh+YaGhRANCAATZxCuUn1F9uiY7Safr+DukCnnqwXUU\n"
    "hPoyQOjCIbMuLX3K+NxDV4oAN6embMwAnW2qWhGgVsD1oB9be2N63Xje\n"
    "-----END PRIVATE KEY-----\n";

inline constexpr const char* kFuzzPublicKeyPem =
    "-----BEGIN PUBLIC KEY-----\n"
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE2cQrlJ9RfbomO0mn6/g7pAp56sF1\n"
    "FIT6MkDowiGzLi19yvjcQ1eKADenpmzMAJ1tqloRoFbA9aAfW3tjet143g==\n"
    "-----END PUBLIC KEY-----\n";

}  // namespace logseal::fuzz
