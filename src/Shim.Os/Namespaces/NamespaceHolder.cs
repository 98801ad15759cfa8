using System.Globalization;

namespace Shim.Os.Namespaces;

/// <summary>What a pod's namespace holder is to be: the namespaces and settings of one pod.</summary>
/// <param name="NetworkNamespace">The netns to join (a /var/run/netns path), or null for the node's network.</param>
/// <param name="New">The namespaces the pod gets of its own.</param>
/// <param name="Hostname">The pod's hostname, set in its own UTS namespace (ignored without one).</param>
/// <param name="Sysctls">The pod's sysctls, set inside its namespaces.</param>
public sealed record HolderSpec(string? NetworkNamespace, NewNamespaces New, string Hostname, IReadOnlyList<KeyValuePair<string, string>> Sysctls);

/// <summary>
/// The process whose namespaces a pod's containers join, as the pause container's were
/// (containerd's CRI points each container's spec at /proc/&lt;sandbox pid&gt;/ns/{net,ipc,uts,pid}).
/// It is this binary, run in two steps: <see cref="Command"/> enters the pod's network namespace,
/// makes its UTS, IPC and pid namespaces, sets the hostname and sysctls, then starts
/// <see cref="HoldCommand"/> (the first process of the new pid namespace, hence its PID 1, and a
/// child of the shim's subreaper once the first step exits), prints its pid and exits. The holder
/// reaps whatever is orphaned to it and lives until it is killed.
/// </summary>
public static class NamespaceHolder
{
    /// <summary>The first step's argv[1].</summary>
    public const string Command = "hold-pod-namespaces";

    /// <summary>The holder's argv[1].</summary>
    public const string HoldCommand = "hold-pod-namespaces-init";

    private const string SelfExe = "/proc/self/exe";

    /// <summary>The command line of the first step for <paramref name="spec"/>.</summary>
    public static IReadOnlyList<string> Arguments(HolderSpec spec)
    {
        ArgumentNullException.ThrowIfNull(spec);
        var args = new List<string> { SelfExe, Command, "--new", spec.New.ToString() };
        if (spec.NetworkNamespace is { Length: > 0 } netns)
        {
            args.Add("--netns");
            args.Add(netns);
        }
        if (spec.New.HasFlag(NewNamespaces.Uts) && spec.Hostname.Length > 0)
        {
            args.Add("--hostname");
            args.Add(spec.Hostname);
        }
        foreach (var (key, value) in spec.Sysctls)
        {
            args.Add("--sysctl");
            args.Add(key + "=" + value);
        }
        return args;
    }

    /// <summary>Reads what <see cref="Arguments"/> wrote (args[0] is <see cref="Command"/>).</summary>
    public static HolderSpec Parse(IReadOnlyList<string> args)
    {
        ArgumentNullException.ThrowIfNull(args);
        string? netns = null;
        string hostname = "";
        var news = NewNamespaces.None;
        var sysctls = new List<KeyValuePair<string, string>>();
        for (int i = 1; i < args.Count; i += 2)
        {
            if (i + 1 >= args.Count)
            {
                throw new ArgumentException($"{Command}: {args[i]} needs a value");
            }
            string value = args[i + 1];
            switch (args[i])
            {
                case "--netns":
                    netns = value;
                    break;
                case "--hostname":
                    hostname = value;
                    break;
                case "--new":
                    news = Enum.Parse<NewNamespaces>(value);
                    break;
                case "--sysctl":
                    int eq = value.IndexOf('=', StringComparison.Ordinal);
                    if (eq <= 0)
                    {
                        throw new ArgumentException($"{Command}: sysctl \"{value}\" is not NAME=VALUE");
                    }
                    sysctls.Add(new(value[..eq], value[(eq + 1)..]));
                    break;
                default:
                    throw new ArgumentException($"{Command}: unknown option {args[i]}");
            }
        }
        return new HolderSpec(netns, news, hostname, sysctls);
    }

    /// <summary>
    /// The first step: enter and make the namespaces, start the holder in them, print its pid on
    /// stdout. Returns the exit status; errors go to <paramref name="error"/>, naming the call that failed.
    /// </summary>
    public static int Run(IReadOnlyList<string> args, Action<string> error, Action<string> output)
    {
        ArgumentNullException.ThrowIfNull(error);
        ArgumentNullException.ThrowIfNull(output);
        try
        {
            var spec = Parse(args);
            if (spec.NetworkNamespace is { } netns)
            {
                PodNamespaces.JoinNetwork(netns);
            }
            PodNamespaces.Unshare(spec.New);
            if (spec.New.HasFlag(NewNamespaces.Uts) && spec.Hostname.Length > 0)
            {
                PodNamespaces.SetHostname(spec.Hostname);
            }
            foreach (var (key, value) in spec.Sysctls)
            {
                PodNamespaces.SetSysctl(key, value);
            }
            LowerOomScore();
            int pid = Spawner.Spawn(new SpawnOptions
            {
                Path = SelfExe,
                Args = [SelfExe, HoldCommand],
                Environment = [],
                WorkingDirectory = "/",
                NewProcessGroup = true,
                // the holder waits for its orphans on a signalfd: no thread may take SIGCHLD first
                BlockedSignals = [Signals.SIGCHLD],
            });
            output(pid.ToString(CultureInfo.InvariantCulture));
            return 0;
        }
        catch (Exception ex) when (ex is ErrnoException or IOException or ArgumentException or UnauthorizedAccessException)
        {
            error(ex.Message);
            return 1;
        }
    }

    /// <summary>The holder: waits, reaping, until killed.</summary>
    public static int Hold()
    {
        PodNamespaces.HoldAndReap();
        return 0;
    }

    // as CRI gives the pause container: the pod's last process for the OOM killer to pick; lowering
    // needs CAP_SYS_RESOURCE, and without it CRI's restrict_oom_score_adj leaves the score alone too
    private static void LowerOomScore()
    {
        try
        {
            File.WriteAllText("/proc/self/oom_score_adj", "-998");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // kept as inherited
        }
    }
}
