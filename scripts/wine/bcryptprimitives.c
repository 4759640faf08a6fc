/* Wine 8 (Debian 12) lacks bcryptprimitives.dll, which Rust's standard
 * library (1.78+) imports for ProcessPrng, its random source on Windows.
 * This shim forwards it to BCryptGenRandom, which Wine has. Built by
 * scripts/windows-tests.sh with mingw-w64; only for running tests under
 * Wine, never shipped. */
#include <windows.h>
#include <bcrypt.h>

__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len) {
    while (len > 0) {
        ULONG chunk = len > 0x10000000 ? 0x10000000 : (ULONG)len;
        if (BCryptGenRandom(NULL, data, chunk, BCRYPT_USE_SYSTEM_PREFERRED_RNG) != 0) {
            return FALSE;
        }
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
