using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;
using Shim.Os.Io;

namespace Shim.Os;

/// <summary>
/// Signals delivered through a signalfd(2) watched by an <see cref="IoLoop"/> instead of a handler
/// thread. Works only for signals every thread blocks (otherwise one of them may take the default
/// action first): spawn the process with them in <see cref="SpawnOptions.BlockedSignals"/>.
/// </summary>
public sealed class SignalFd : IDisposable
{
    private readonly IoLoop _loop;
    private readonly SafeFileHandle _handle;
    private readonly IDisposable _watch;
    private readonly Action<int> _onSignal;

    private unsafe SignalFd(IoLoop loop, ReadOnlySpan<int> signals, Action<int> onSignal)
    {
        _loop = loop;
        _onSignal = onSignal;
        byte* mask = stackalloc byte[Libc.SigsetSize];
        Fill(mask, signals);
        int fd = Libc.signalfd(-1, mask, Libc.SFD_NONBLOCK | Libc.SFD_CLOEXEC);
        if (fd < 0)
        {
            throw ErrnoException.FromLast("signalfd");
        }
        _handle = new SafeFileHandle(fd, ownsHandle: true);
        try
        {
            _watch = loop.Watch(_handle, Drain);
        }
        catch
        {
            _handle.Dispose();
            throw;
        }
    }

    /// <summary>True when every one of <paramref name="signals"/> is blocked on the calling thread (inherited from the spawner).</summary>
    public static unsafe bool AreBlocked(params ReadOnlySpan<int> signals)
    {
        byte* current = stackalloc byte[Libc.SigsetSize];
        Check(Libc.pthread_sigmask(Libc.SIG_BLOCK, null, current), "pthread_sigmask");
        foreach (int signal in signals)
        {
            if (Libc.sigismember(current, signal) != 1)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Blocks <paramref name="signals"/> on the calling thread; threads it creates afterwards inherit the mask.</summary>
    public static unsafe void Block(params ReadOnlySpan<int> signals)
    {
        byte* mask = stackalloc byte[Libc.SigsetSize];
        Fill(mask, signals);
        Check(Libc.pthread_sigmask(Libc.SIG_BLOCK, mask, null), "pthread_sigmask");
    }

    /// <summary>Calls <paramref name="onSignal"/> on the loop thread with each of <paramref name="signals"/> received; dispose to stop.</summary>
    public static SignalFd Listen(IoLoop loop, ReadOnlySpan<int> signals, Action<int> onSignal)
    {
        ArgumentNullException.ThrowIfNull(loop);
        ArgumentNullException.ThrowIfNull(onSignal);
        return new SignalFd(loop, signals, onSignal);
    }

    /// <summary>Stops listening and closes the signalfd.</summary>
    public void Dispose()
    {
        _loop.Unwatch(_watch);
        _handle.Dispose();
    }

    private unsafe void Drain()
    {
        byte* info = stackalloc byte[Libc.SignalfdSiginfoSize];
        while (true)
        {
            nint n = Libc.read((int)_handle.DangerousGetHandle(), info, Libc.SignalfdSiginfoSize);
            if (n == Libc.SignalfdSiginfoSize)
            {
                _onSignal((int)*(uint*)info);
                continue;
            }
            if (n < 0 && Errno.Last == Errno.EINTR)
            {
                continue;
            }
            return;   // EAGAIN: drained
        }
    }

    private static unsafe void Fill(byte* mask, ReadOnlySpan<int> signals)
    {
        _ = Libc.sigemptyset(mask);   // fails only for a null mask
        foreach (int signal in signals)
        {
            if (Libc.sigaddset(mask, signal) != 0)
            {
                throw new ArgumentException($"invalid signal {signal}", nameof(signals));
            }
        }
    }

    private static void Check(int err, string operation)
    {
        if (err != 0)
        {
            throw new ErrnoException(err, operation);
        }
    }
}
