using System.Runtime.InteropServices;

namespace Shim.Os.Io;

/// <summary>
/// A handler watching one fd: holds a reference on the handle from construction until released
/// (so the fd number cannot be closed and reused under an epoll registration), and releases it
/// (unregister, retire, drop the reference) exactly once, on the loop thread.
/// </summary>
internal abstract class FdRegistration : IoHandler
{
    private readonly SafeHandle _handle;
    private bool _registered;   // loop thread only
    private bool _released;     // loop thread only

    protected FdRegistration(IoLoop loop, SafeHandle handle)
    {
        ArgumentNullException.ThrowIfNull(handle);
        Loop = loop;
        _handle = handle;
        bool added = false;
        handle.DangerousAddRef(ref added);
        Fd = (int)handle.DangerousGetHandle();
    }

    internal int Fd { get; }

    protected IoLoop Loop { get; }

    protected SafeHandle Handle => _handle;

    /// <summary>Loop thread: adds the fd to epoll; false when it is not pollable (a regular file).</summary>
    protected bool Register()
    {
        _registered = Loop.Register(Fd, this);
        return _registered;
    }

    /// <summary>Any thread: <see cref="Release"/> now on the loop thread, else posted to it.</summary>
    protected void ReleaseOnLoop()
    {
        if (Loop.OnLoopThread)
        {
            Release();
        }
        else
        {
            Loop.Post(Release);
        }
    }

    /// <summary>Loop thread only; idempotent.</summary>
    protected void Release()
    {
        if (_released)
        {
            return;
        }
        _released = true;
        if (_registered)
        {
            Loop.Unregister(Fd, this);
            _registered = false;
        }
        Loop.Retire(this);
        _handle.DangerousRelease();
    }
}
