using Shim.Os.Terminals;
namespace Shim.Runc;

/// <summary>Builds runc argv lists; pure data so it is tested without running runc.</summary>
internal static partial class RuncArgs
{
    /// <summary>argv[0] and the global flags every runc call starts with.</summary>
    public static List<string> Global(RuncConfig config)
    {
        var args = new List<string>(16) { config.Binary, "--root", config.Root, "--log", config.LogPath, "--log-format", "json" };
        if (config.SystemdCgroup)
        {
            args.Add("--systemd-cgroup");
        }
        return args;
    }

    /// <summary><c>runc create</c> for an init process.</summary>
    public static List<string> Create(RuncConfig config, string id, CreateOptions options)
    {
        var args = Global(config);
        args.AddRange(["create", "--bundle", options.Bundle, "--pid-file", options.PidFile]);
        if (options.ConsoleSocket is { } socket)
        {
            args.AddRange(["--console-socket", socket]);
        }
        if (options.NoPivot)
        {
            args.Add("--no-pivot");
        }
        if (options.NoNewKeyring)
        {
            args.Add("--no-new-keyring");
        }
        args.Add(id);
        return args;
    }

    /// <summary><c>runc start</c>.</summary>
    public static List<string> Start(RuncConfig config, string id) => Simple(config, "start", id);

    /// <summary><c>runc kill [--all] id signal</c>.</summary>
    public static List<string> Kill(RuncConfig config, string id, int signal, bool all)
    {
        var args = Global(config);
        args.Add("kill");
        if (all)
        {
            args.Add("--all");
        }
        args.Add(id);
        args.Add(signal.ToString(System.Globalization.CultureInfo.InvariantCulture));
        return args;
    }

    /// <summary><c>runc delete [--force] id</c>.</summary>
    public static List<string> Delete(RuncConfig config, string id, bool force)
    {
        var args = Global(config);
        args.Add("delete");
        if (force)
        {
            args.Add("--force");
        }
        args.Add(id);
        return args;
    }

    /// <summary><c>runc ps --format json id</c>.</summary>
    public static List<string> Ps(RuncConfig config, string id)
    {
        var args = Global(config);
        args.AddRange(["ps", "--format", "json", id]);
        return args;
    }

    /// <summary><c>runc state id</c>.</summary>
    public static List<string> State(RuncConfig config, string id) => Simple(config, "state", id);

    /// <summary><c>runc pause id</c>.</summary>
    public static List<string> Pause(RuncConfig config, string id) => Simple(config, "pause", id);

    /// <summary><c>runc resume id</c>.</summary>
    public static List<string> Resume(RuncConfig config, string id) => Simple(config, "resume", id);

    /// <summary>
    /// <c>runc update --resources FILE id</c>, FILE holding the LinuxResources JSON. go-runc passes
    /// "-" and the JSON on stdin, which runc reads from fd 0 but crun opens as the path /dev/stdin
    /// (crun's src/update.c): a link udev or systemd makes, absent from a bare devtmpfs ("error
    /// opening file `/dev/stdin`: No such file or directory"). Both read a file.
    /// </summary>
    public static List<string> Update(RuncConfig config, string id, string resourcesFile)
    {
        var args = Global(config);
        args.AddRange(["update", "--resources", resourcesFile, id]);
        return args;
    }

    /// <summary><c>runc exec --process file --detach --pid-file f id</c>.</summary>
    public static List<string> Exec(RuncConfig config, string id, ExecOptions options)
    {
        var args = Global(config);
        args.AddRange(["exec", "--process", options.ProcessFile]);
        if (options.ConsoleSocket is { } socket)
        {
            args.AddRange(["--console-socket", socket]);
        }
        args.AddRange(["--detach", "--pid-file", options.PidFile, id]);
        return args;
    }

    private static List<string> Simple(RuncConfig config, string verb, string id)
    {
        var args = Global(config);
        args.Add(verb);
        args.Add(id);
        return args;
    }
}

/// <summary>Flags of <c>runc create</c>.</summary>
public sealed record CreateOptions(string Bundle, string PidFile, string? ConsoleSocket = null, bool NoPivot = false, bool NoNewKeyring = false);

/// <summary>Flags of <c>runc exec</c>.</summary>
internal sealed record ExecOptions(string ProcessFile, string PidFile, string? ConsoleSocket = null);
