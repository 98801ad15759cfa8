using Shim.Core.Cli;
using Shim.Core.Errors;
using Shim.Host;
using Shim.Os;
using Shim.Os.Namespaces;

// containerd runs this binary as `start` (print an address, exit), `delete` (cleanup when no RPC is
// possible) and, through our own `start`, with no action as the long-lived server.
if (args.Length > 0 && args[0] == FdLimit.ExecCommand)
{
    // not a shim: a child of one that raised its descriptor limit, on its way to runc (see FdLimit)
    return FdLimit.ExecWithOriginalLimit(args, StdStreams.WriteStderr);
}

if (args.Length > 0 && args[0] == NamespaceHolder.Command)
{
    // not a shim: the first step of a pod's namespace holder (shim sandboxer, containerd 2.x)
    return NamespaceHolder.Run(args, StdStreams.WriteStderr, text => StdStreams.WriteStdout(System.Text.Encoding.UTF8.GetBytes(text)));
}
if (args.Length > 0 && args[0] == NamespaceHolder.HoldCommand)
{
    return NamespaceHolder.Hold();
}

ShimArgs parsed;
try
{
    parsed = ShimArgs.Parse(args);
}
catch (ArgumentException ex)
{
    StdStreams.WriteStderr($"{ShimInfo.RuntimeName}: {ex.Message}");
    return 2;
}

try
{
    if (parsed.Version)
    {
        ShimInfo.PrintVersion();
        return 0;
    }
    if (parsed.Info)
    {
        return await InfoCommand.RunAsync(Reaper.Instance).ConfigureAwait(false);
    }
    return parsed.Action switch
    {
        "start" => StartCommand.Run(parsed),
        "delete" => await DeleteCommand.RunAsync(parsed, Reaper.Instance).ConfigureAwait(false),
        "" => ServeCommand.Run(parsed),
        _ => throw new ArgumentException($"unknown action \"{parsed.Action}\""),
    };
}
#pragma warning disable CA1031 // the last stop: any failure becomes the message and exit status containerd reads
catch (Exception ex)
#pragma warning restore CA1031
{
    // containerd shows "<output>: exit status 1"; the Go shim prints "<runtime>: <error>" without newline.
    // Ours says which action on which container failed before why: "start c1: Could not find file ...".
    StdStreams.WriteStderr(Attempt(parsed) is { } attempt
        ? $"{ShimInfo.RuntimeName}: {attempt}: {StatusMapping.Describe(ex)}"
        : $"{ShimInfo.RuntimeName}: {StatusMapping.Describe(ex)}");
    return 1;
}

static string? Attempt(ShimArgs args) => args switch
{
    { Version: true } => "version",
    { Info: true } => "info",
    { Action: "start" } => $"start {args.Id}",
    { Action: "delete" } => $"delete {args.Id}",
    { Action: "" } => $"serve {args.Id}",
    _ => null,
};
