namespace Shim.Core.Cli;

/// <summary>The shim's command line, parsed with Go's flag rules (single or double dash, -k v or -k=v).</summary>
public sealed record ShimArgs
{
    /// <summary>-namespace.</summary>
    public string Namespace { get; init; } = "";
    /// <summary>-id.</summary>
    public string Id { get; init; } = "";
    /// <summary>-address: containerd's gRPC socket.</summary>
    public string Address { get; init; } = "";
    /// <summary>-publish-binary (accepted, unused: events go over TTRPC_ADDRESS).</summary>
    public string PublishBinary { get; init; } = "";
    /// <summary>-bundle (given to delete).</summary>
    public string Bundle { get; init; } = "";
    /// <summary>-socket: serve this socket instead of the inherited fd 3.</summary>
    public string Socket { get; init; } = "";
    /// <summary>-debug-socket (accepted, unused).</summary>
    public string DebugSocket { get; init; } = "";
    /// <summary>-debug.</summary>
    public bool Debug { get; init; }
    /// <summary>-v / -version.</summary>
    public bool Version { get; init; }
    /// <summary>-info.</summary>
    public bool Info { get; init; }
    /// <summary>The action after the flags: start, delete, or empty for serve mode.</summary>
    public string Action { get; init; } = "";

    private static readonly HashSet<string> BoolFlags = ["debug", "v", "version", "info"];
    private static readonly HashSet<string> StringFlags = ["namespace", "id", "address", "publish-binary", "bundle", "socket", "debug-socket"];

    /// <summary>Parses argv (without the program name); throws ArgumentException on an unknown or incomplete flag.</summary>
    public static ShimArgs Parse(IReadOnlyList<string> argv)
    {
        ArgumentNullException.ThrowIfNull(argv);
        var result = new ShimArgs();
        int i = 0;
        for (; i < argv.Count; i++)
        {
            string arg = argv[i];
            if (arg == "--")
            {
                i++;
                break;
            }
            if (arg.Length < 2 || arg[0] != '-')
            {
                break;
            }
            string name = arg.TrimStart('-');
            string? value = null;
            int eq = name.IndexOf('=', StringComparison.Ordinal);
            if (eq >= 0)
            {
                value = name[(eq + 1)..];
                name = name[..eq];
            }
            if (BoolFlags.Contains(name))
            {
                bool on = value is null || value is "true" or "1" or "t" or "T" or "TRUE" or "True";
                result = name switch
                {
                    "debug" => result with { Debug = on },
                    "info" => result with { Info = on },
                    _ => result with { Version = on },
                };
                continue;
            }
            if (!StringFlags.Contains(name))
            {
                throw new ArgumentException($"flag provided but not defined: -{name}");
            }
            if (value is null)
            {
                if (i + 1 >= argv.Count)
                {
                    throw new ArgumentException($"flag needs an argument: -{name}");
                }
                value = argv[++i];
            }
            result = name switch
            {
                "namespace" => result with { Namespace = value },
                "id" => result with { Id = value },
                "address" => result with { Address = value },
                "publish-binary" => result with { PublishBinary = value },
                "bundle" => result with { Bundle = value },
                "socket" => result with { Socket = value },
                _ => result with { DebugSocket = value },
            };
        }
        if (i < argv.Count)
        {
            result = result with { Action = argv[i] };
        }
        return result;
    }
}
