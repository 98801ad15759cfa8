using System.Net.Sockets;
using System.Runtime.InteropServices;
using System.Text;
using Microsoft.Win32.SafeHandles;
using Shim.Os.Interop;

namespace Shim.Os.Terminals;

/// <summary>A listening unix socket in a fresh private temp dir that receives one pty master from runc (--console-socket).</summary>
public sealed class ConsoleSocket : IDisposable
{
    private readonly Socket _listener;
    private readonly string _directory;
    private int _disposed;

    private ConsoleSocket(Socket listener, string directory, string path)
    {
        _listener = listener;
        _directory = directory;
        Path = path;
    }

    /// <summary>The socket path to pass as --console-socket.</summary>
    public string Path { get; }

    /// <summary>Listens on "&lt;dir&gt;/pty&lt;random&gt;/pty.sock", dir being $XDG_RUNTIME_DIR or else the system temp dir; the pty dir has mode 0700.</summary>
    public static ConsoleSocket Create()
    {
        // Same place as the Go shim's console.NewTempConsoleSocket.
        string? runtimeDir = Environment.GetEnvironmentVariable("XDG_RUNTIME_DIR");
        bool underRuntimeDir = !string.IsNullOrEmpty(runtimeDir);
        string parent = System.IO.Path.GetFullPath(underRuntimeDir ? runtimeDir! : System.IO.Path.GetTempPath());
        string directory = MakePrivateTempDirectory(parent, "pty");
        string path = System.IO.Path.Combine(directory, "pty.sock");
        Socket? listener = null;
        try
        {
            int pathBytes = Encoding.UTF8.GetByteCount(path);
            if (pathBytes >= Libc.SunPathSize)
            {
                throw new IOException($"console socket path is {pathBytes} bytes, unix sockets allow {Libc.SunPathSize - 1}: {path}");
            }
            listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
            listener.Bind(new UnixDomainSocketEndPoint(path));
            listener.Listen(1);
            if (underRuntimeDir)
            {
                // The Go shim opens the socket up like this under XDG_RUNTIME_DIR (rootless);
                // the 0700 directory still keeps other users out.
                File.SetUnixFileMode(path, (UnixFileMode)0x1ED /* 0755 */ | UnixFileMode.StickyBit);
            }
            return new ConsoleSocket(listener, directory, path);
        }
        catch
        {
            listener?.Dispose();
            RemoveDirectory(directory);
            throw;
        }
    }

    /// <summary>Accepts one connection and receives the master fd (SCM_RIGHTS, O_CLOEXEC); bounded by ct. Throws <see cref="IOException"/> if the message carries no fd.</summary>
    public async Task<SafeFileHandle> ReceiveMasterAsync(CancellationToken ct)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        using var connection = await _listener.AcceptAsync(ct).ConfigureAwait(false);
        var peek = new byte[1];
        while (true)
        {
            // .NET has no SCM_RIGHTS API, so the message is read with recvmsg(2) on the raw fd.
            // First wait (cancellably) until runc's message or its hang-up is there, peeking so
            // the data stays queued together with its control message.
            await connection.ReceiveAsync(peek, SocketFlags.Peek, ct).ConfigureAwait(false);
            if (ScmRights.TryReceive(connection.SafeHandle, out var master, out _))
            {
                return master!;
            }
        }
    }

    /// <summary>Closes the socket and removes the socket file and its directory.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _listener.Dispose();
        RemoveDirectory(_directory);
    }

    /// <summary>Test helper playing runc: connects to <paramref name="socketPath"/> and sends <paramref name="master"/> with SCM_RIGHTS, the pty name as data.</summary>
    internal static void SendMaster(string socketPath, SafeHandle master)
    {
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Connect(new UnixDomainSocketEndPoint(socketPath));
        ScmRights.Send(socket.SafeHandle, Terminal.TryGetSlaveName(master) ?? "pty", master);
    }

    /// <summary>mkdtemp(3): "&lt;parent&gt;/&lt;prefix&gt;XXXXXX", created with mode 0700.</summary>
    private static unsafe string MakePrivateTempDirectory(string parent, string prefix)
    {
        string template = System.IO.Path.Combine(parent, prefix + "XXXXXX");
        byte* native = NativeStrings.Single(template, out var owner);
        using (owner)
        {
            if (Libc.mkdtemp(native) == null)
            {
                throw ErrnoException.FromLast($"mkdtemp {template}");
            }
            return NativeStrings.Read(native);
        }
    }

    private static void RemoveDirectory(string directory)
    {
        try
        {
            Directory.Delete(directory, recursive: true);
        }
        catch (IOException)
        {
            // already gone, or in use: nothing better to do on cleanup
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
