using Shim.Core.Cli;
using Shim.Host;

// containerd runs this binary as `start` (print an address, exit), `delete` (cleanup when no RPC is
// possible) and, through our own `start`, with no action as the long-lived server.
ShimArgs parsed;
try
{
    parsed = ShimArgs.Parse(args);
}
catch (ArgumentException ex)
{
    Console.Error.Write($"{ShimInfo.RuntimeName}: {ex.Message}");
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
        return await InfoCommand.RunAsync().ConfigureAwait(false);
    }
    return parsed.Action switch
    {
        "start" => StartCommand.Run(parsed),
        "delete" => await DeleteCommand.RunAsync(parsed).ConfigureAwait(false),
        "" => ServeCommand.Run(parsed),
        _ => throw new ArgumentException($"unknown action \"{parsed.Action}\""),
    };
}
catch (Exception ex)
{
    // containerd shows "<output>: exit status 1"; the Go shim prints "<runtime>: <error>" without newline
    Console.Error.Write($"{ShimInfo.RuntimeName}: {ex.Message}");
    return 1;
}
