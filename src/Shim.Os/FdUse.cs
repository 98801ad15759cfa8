using System.Runtime.InteropServices;

namespace Shim.Os;

/// <summary>Holds a reference on a SafeHandle while its raw fd is used, so it cannot be closed underneath the call.</summary>
internal readonly struct FdUse : IDisposable
{
    private readonly SafeHandle _handle;

    internal FdUse(SafeHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        _handle = handle;
        bool added = false;
        handle.DangerousAddRef(ref added);
        Fd = (int)handle.DangerousGetHandle();
    }

    /// <summary>The raw descriptor, valid until Dispose.</summary>
    internal int Fd { get; }

    public void Dispose() => _handle.DangerousRelease();
}
