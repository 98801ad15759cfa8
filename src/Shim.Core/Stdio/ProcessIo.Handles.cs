using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using Shim.Core.Errors;
using Shim.Os;
using Shim.Runc;

namespace Shim.Core.Stdio;

/// <summary>The building blocks the modes open their streams with.</summary>
public abstract partial class ProcessIo
{
    /// <summary>Keeps <paramref name="handle"/> until <see cref="Dispose"/>.</summary>
    private protected T Own<T>(T handle)
        where T : SafeHandle
    {
        _owned.Add(handle);
        return handle;
    }

    /// <summary>Which way a copy runs: output copies are tracked (progress, unread bytes, end of output).</summary>
    private protected enum Flow
    {
        /// <summary>From the client to the process (stdin, terminal input).</summary>
        Input,

        /// <summary>From the process to the client.</summary>
        Output,
    }

    /// <summary>Queues a copy for <see cref="Start"/>; <paramref name="stream"/> names it in logs.</summary>
    private protected void Copy(SafeHandle source, SafeHandle destination, bool closeAtEof, Flow flow, string stream) =>
        _pumps.Add((source, destination, closeAtEof, flow, stream));

    /// <summary>
    /// Opens the stdin FIFO for reading; the shim also keeps a writer open (until
    /// <see cref="CloseStdin"/>) so the process sees no EOF before the client has attached.
    /// </summary>
    private protected SafeFileHandle OpenStdinFifo(string path)
    {
        SafeFileHandle reader, keeper;
        try
        {
            (reader, keeper) = Fifos.OpenInput(path);
        }
        catch (InvalidDataException)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"opening stdin {path} failed: it is not a FIFO");
        }
        catch (ErrnoException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"opening stdin {path} failed: {ex.Message}", ex);
        }
        Own(reader);
        _stdinKeeper = keeper;
        return reader;
    }

    /// <summary>stdin through a pipe fed from the FIFO: returns runc's end, or null when no stdin was asked for.</summary>
    private protected SafeHandle? StdinPipe(string path, uint uid, uint gid)
    {
        if (path.Length == 0)
        {
            return null;
        }
        var reader = OpenStdinFifo(path);
        var (pipeRead, pipeWrite) = Pipes.Create();
        var runcEnd = RuncEnd(pipeRead, uid, gid);
        Own(pipeWrite);
        Copy(reader, pipeWrite, true, Flow.Input, "stdin");
        return runcEnd;
    }

    /// <summary>An output stream through a pipe copied to <paramref name="destination"/>: returns runc's end and the shim's read end.</summary>
    private protected (SafeHandle RuncEnd, SafeHandle PipeRead) OutputPipe(SafeHandle destination, uint uid, uint gid, string stream)
    {
        var (pipeRead, pipeWrite) = Pipes.Create();
        Own(pipeRead);
        // the destination is closed at EOF: the reader (ctr, CRI) waits for EOF on the FIFO before Delete,
        // and data still buffered in the FIFO stays readable after our close, as long as a reader holds it
        Copy(pipeRead, destination, true, Flow.Output, stream);
        return (RuncEnd(pipeWrite, uid, gid), pipeRead);
    }

    /// <summary>
    /// An output path of pipe or terminal mode that is not a FIFO (a file, /dev/null): appended to
    /// when it exists, never created (containerd's shim opens it O_WRONLY|O_APPEND). Null when the
    /// path names a FIFO, whose handle is returned in <paramref name="fifo"/> instead.
    /// </summary>
    private protected SafeFileHandle OpenOutputPath(string path, string stream, out SafeFileHandle? fifo)
    {
        SafeFileHandle handle;
        bool isFifo;
        try
        {
            (handle, isFifo) = Fifos.OpenOutputPath(path);
        }
        catch (ErrnoException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"opening {stream} {path} failed: {ex.Message}", ex);
        }
        Own(handle);
        fifo = isFifo ? handle : null;
        return handle;
    }

    /// <summary>
    /// Opens (creating it and its directory) a log file for appending (file:// URIs, as containerd's
    /// shim). Opened without blocking and refused unless a regular file: a FIFO with no reader held
    /// Create for ever (found by fuzz/run.sh service-live, "file:///…/fifo%00x"); a path that cannot
    /// be one (a NUL byte, a file as its directory) is an InvalidArgument naming it.
    /// </summary>
    private protected SafeFileHandle OpenLogFile(string path)
    {
        if (path.Contains('\0', StringComparison.Ordinal))
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"log file \"{path}\" contains a NUL byte");
        }
        SafeFileHandle file;
        try
        {
            string? dir = Path.GetDirectoryName(path);
            if (!string.IsNullOrEmpty(dir))
            {
                Directory.CreateDirectory(dir);
            }
            file = Fds.Open(path, Fds.O_WRONLY | Fds.O_CREAT | Fds.O_APPEND | Fds.O_NONBLOCK | Fds.O_NOCTTY, Convert.ToInt32("644", 8));
        }
        catch (Exception ex) when (ex is ErrnoException or IOException or UnauthorizedAccessException)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"opening log file {path} failed: {ex.Message}", ex);
        }
        Own(file);
        if (!Fds.IsRegularFile(file))
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"log file {path} is not a regular file");
        }
        return file;
    }

    /// <summary>
    /// Starts the binary:// logger <paramref name="uri"/> names. A path that exists but cannot be
    /// run (not executable, a directory) is the request's fault: InvalidArgument naming it, where
    /// posix_spawn's ErrnoException was answered UNKNOWN (found by fuzz/run.sh service-live).
    /// </summary>
    private protected BinaryLogger StartLogger(string uri)
    {
        try
        {
            return BinaryLogger.Start(Context.Reaper, new Uri(uri), ContainerId, Namespace, Context.Log);
        }
        catch (ErrnoException ex)
        {
            throw new ShimException(ErrorKind.InvalidArgument, $"starting logging binary {uri} failed: {ex.Message}", ex);
        }
    }

    /// <summary>A handle runc gets: owned by the process's uid/gid, and closed on our side by <see cref="Start"/>.</summary>
    private protected SafeHandle RuncEnd(SafeFileHandle end, uint uid, uint gid)
    {
        if (uid != 0 || gid != 0)
        {
            Fds.Fchown(end, (int)uid, (int)gid);
        }
        _runcSide.Add(end);
        return end;
    }

    /// <summary>runc's fds: /dev/null where a stream is null.</summary>
    private protected RuncIo RuncFds(SafeHandle? stdin, SafeHandle? stdout, SafeHandle? stderr) => new()
    {
        Stdin = stdin ?? DevNull(),
        Stdout = stdout ?? DevNull(),
        Stderr = stderr ?? DevNull(),
    };

    private SafeFileHandle DevNull()
    {
        var handle = Fds.Open("/dev/null", Fds.O_RDWR);
        _runcSide.Add(handle);
        return handle;
    }
}
