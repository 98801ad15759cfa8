using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Io;

/// <summary>
/// The loop-side half of a <see cref="LoopSocket"/> or <see cref="LoopListener"/>: keeps the fd
/// registered (see <see cref="FdRegistration"/>) and turns edges into <see cref="Readiness"/>
/// signals. The loop thread never reads or writes the socket itself.
/// </summary>
internal sealed class SocketWatch : FdRegistration
{
    private const uint ReadEvents = Libc.EPOLLIN | Libc.EPOLLHUP | Libc.EPOLLERR | Libc.EPOLLRDHUP;
    private const uint WriteEvents = Libc.EPOLLOUT | Libc.EPOLLHUP | Libc.EPOLLERR;

    private int _stopped;       // Interlocked

    internal SocketWatch(IoLoop loop, SafeFileHandle handle)
        : base(loop, handle)
    {
        loop.Add(this);
    }

    internal Readiness Read { get; } = new();

    internal Readiness Write { get; } = new();

    internal override void Start()
    {
        if (Volatile.Read(ref _stopped) != 0)
        {
            Release();
            return;
        }
        bool registered;
        try
        {
            registered = Register();
        }
        catch (ErrnoException)
        {
            Stop();
            Release();
            throw;
        }
        if (!registered)
        {
            // Not a pollable fd: never wait, just retry the syscall.
            Read.Close();
            Write.Close();
        }
    }

    internal override void OnEvents(uint events)
    {
        if ((events & ReadEvents) != 0)
        {
            Read.Signal();
        }
        if ((events & WriteEvents) != 0)
        {
            Write.Signal();
        }
    }

    internal override void Abort(Exception? error)
    {
        Read.Close();
        Write.Close();
        Release();
    }

    /// <summary>Any thread: fails pending waits and drops the registration (on the loop thread).</summary>
    internal void Stop()
    {
        if (Interlocked.Exchange(ref _stopped, 1) != 0)
        {
            return;
        }
        Read.Close();
        Write.Close();
        ReleaseOnLoop();
    }
}
