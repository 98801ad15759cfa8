using System.Runtime.InteropServices;
using Shim.Os;

namespace Shim.Core.Stdio;

/// <summary>
/// Pipe mode (no scheme, or fifo://): runc gets pipe ends, the shim copies between the pipes and
/// containerd's FIFOs. Output FIFOs are held open read-write so output written before a reader
/// attaches, or after it detaches, waits in the FIFO instead of failing (PROTOCOL.md §11). A
/// path that is not a FIFO is appended to as a file, as containerd's shim does.
/// </summary>
internal sealed class FifoIo(StdioContext context, string containerId, string ns) : ProcessIo(context, containerId, ns)
{
    private readonly List<(SafeHandle Pipe, SafeHandle Fifo)> _delivery = new(2);

    private protected override void OpenStreams(StdioPaths paths, string scheme, string stdoutPath, uint ioUid, uint ioGid)
    {
        var stdin = StdinPipe(paths.Stdin, ioUid, ioGid);
        var stdout = Output(stdoutPath, ioUid, ioGid, "stdout");
        var stderr = Output(Split(paths.Stderr).Path, ioUid, ioGid, "stderr");
        RuncSide = RuncFds(stdin, stdout, stderr);
    }

    /// <summary>What waits in the pipes from the process and in the client's FIFOs (seen through a read-only handle on each FIFO).</summary>
    private protected override long UnreadOutput()
    {
        long total = 0;
        foreach (var (pipe, fifo) in _delivery)
        {
            total += Pipes.Unread(pipe) + Pipes.Unread(fifo);
        }
        return total;
    }

    private SafeHandle? Output(string path, uint uid, uint gid, string stream)
    {
        if (path.Length == 0)
        {
            return null;
        }
        var destination = OpenOutputPath(path, stream, out var fifo);
        if (fifo is null)
        {
            return OutputPipe(destination, uid, gid, stream).RuncEnd;
        }
        var observer = Own(Fifos.OpenObserver(fifo));
        var (runcEnd, pipeRead) = OutputPipe(destination, uid, gid, stream);
        _delivery.Add((pipeRead, observer));
        return runcEnd;
    }
}
