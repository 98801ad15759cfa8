using Shim.Os.Terminals;
namespace Shim.Runc;

internal static partial class RuncArgs
{
    /// <summary>
    /// <c>runc checkpoint --image-path i --work-path w [flags] [--leave-running] id</c>, in the order
    /// go-runc writes them (the Go shim's command line).
    /// </summary>
    public static List<string> Checkpoint(RuncConfig config, string id, CheckpointOptions options)
    {
        var args = Global(config);
        args.Add("checkpoint");
        AddCriuFlags(args, options);
        if (options.LeaveRunning)
        {
            args.Add("--leave-running");
        }
        args.Add(id);
        return args;
    }

    /// <summary>
    /// <c>runc restore --image-path i [--work-path w] [--parent-path p] --detach --pid-file f
    /// [--console-socket s] [--no-pivot] --no-subreaper --bundle b id</c>. The shim is the subreaper:
    /// once runc exits, the restored init is reparented to it and reaped by its one reaper. crun
    /// has no <c>--no-subreaper</c> (and needs none: it never becomes a subreaper), so it gets none.
    /// </summary>
    public static List<string> Restore(RuncConfig config, string id, RestoreOptions options, RuntimeFlavour flavour = RuntimeFlavour.Runc)
    {
        var args = Global(config);
        args.AddRange(["restore", "--image-path", options.ImagePath]);
        if (options.WorkPath is { Length: > 0 } work)
        {
            args.AddRange(["--work-path", work]);
        }
        if (options.ParentPath is { Length: > 0 } parent)
        {
            args.AddRange(["--parent-path", parent]);
        }
        args.AddRange(["--detach", "--pid-file", options.PidFile]);
        if (options.ConsoleSocket is { } socket)
        {
            args.AddRange(["--console-socket", socket]);
        }
        if (options.NoPivot)
        {
            args.Add("--no-pivot");
        }
        if (flavour != RuntimeFlavour.Crun)
        {
            args.Add("--no-subreaper");
        }
        args.AddRange(["--bundle", options.Bundle, id]);
        return args;
    }

    private static void AddCriuFlags(List<string> args, CheckpointOptions options)
    {
        args.AddRange(["--image-path", options.ImagePath, "--work-path", options.WorkPath]);
        if (options.ParentPath is { Length: > 0 } parent)
        {
            args.AddRange(["--parent-path", parent]);
        }
        if (options.TcpEstablished)
        {
            args.Add("--tcp-established");
        }
        if (options.ExternalUnixSockets)
        {
            args.Add("--ext-unix-sk");
        }
        if (options.ShellJob)
        {
            args.Add("--shell-job");
        }
        if (options.FileLocks)
        {
            args.Add("--file-locks");
        }
        foreach (string ns in options.EmptyNamespaces ?? [])
        {
            args.AddRange(["--empty-ns", ns]);
        }
    }
}

/// <summary>Flags of <c>runc checkpoint</c>.</summary>
/// <param name="ImagePath">Where CRIU writes the image files.</param>
/// <param name="WorkPath">Where CRIU writes its logs (dump.log) and work files.</param>
public sealed record CheckpointOptions(string ImagePath, string WorkPath)
{
    /// <summary>Previous image for an incremental dump (--parent-path).</summary>
    public string? ParentPath { get; init; }
    /// <summary>Allow established TCP connections (--tcp-established).</summary>
    public bool TcpEstablished { get; init; }
    /// <summary>Allow external unix sockets (--ext-unix-sk).</summary>
    public bool ExternalUnixSockets { get; init; }
    /// <summary>Allow a terminal (--shell-job).</summary>
    public bool ShellJob { get; init; }
    /// <summary>Dump file locks (--file-locks).</summary>
    public bool FileLocks { get; init; }
    /// <summary>Namespaces to create empty at restore (--empty-ns, repeated).</summary>
    public IReadOnlyList<string>? EmptyNamespaces { get; init; }
    /// <summary>Keep the container running after the dump (--leave-running).</summary>
    public bool LeaveRunning { get; init; }
}

/// <summary>Flags of <c>runc restore</c> (always detached, without a subreaper).</summary>
/// <param name="ImagePath">The checkpoint image to restore.</param>
/// <param name="Bundle">The container's bundle.</param>
/// <param name="PidFile">Where runc writes the restored init's pid.</param>
public sealed record RestoreOptions(string ImagePath, string Bundle, string PidFile)
{
    /// <summary>CRIU work dir (restore.log); runc uses the image path when null.</summary>
    public string? WorkPath { get; init; }
    /// <summary>Parent image (--parent-path).</summary>
    public string? ParentPath { get; init; }
    /// <summary>Socket runc sends the pty master to (terminal mode).</summary>
    public string? ConsoleSocket { get; init; }
    /// <summary>--no-pivot.</summary>
    public bool NoPivot { get; init; }
}
