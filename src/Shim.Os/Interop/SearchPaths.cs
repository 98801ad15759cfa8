using System.Runtime.InteropServices;

// "libc" is never looked for next to the binary, only where the dynamic loader looks. (The
// NativeAOT binary binds libc at link time anyway: DirectPInvoke in Shim.Host.csproj.)
[assembly: DefaultDllImportSearchPaths(DllImportSearchPath.SafeDirectories)]
