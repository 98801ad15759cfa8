namespace Shim.Core;

/// <summary>
/// Names of the files and directories in a container's bundle: those containerd writes
/// (config.json, rootfs), runc's (init.pid, log.json) and the shim's own (address, options.json,
/// runtime, work).
/// </summary>
public static class BundleFiles
{
    /// <summary>The OCI spec containerd wrote.</summary>
    public const string Config = "config.json";

    /// <summary>The root filesystem, mounted by Create and unmounted by Delete.</summary>
    public const string Rootfs = "rootfs";

    /// <summary>The pid of the container's init, written by runc (--pid-file).</summary>
    public const string InitPid = "init.pid";

    /// <summary>runc's JSON log (--log), whose last error goes into the shim's messages.</summary>
    public const string RuncLog = "log.json";

    /// <summary>The shim's socket address, written by <c>start</c> for containerd.</summary>
    public const string Address = "address";

    /// <summary>The runtime options of Create, read again by the <c>delete</c> action.</summary>
    public const string Options = "options.json";

    /// <summary>The runtime (runc binary) name, as containerd's shim keeps it.</summary>
    public const string Runtime = "runtime";

    /// <summary>init's exit status and time, kept by the shim for the <c>delete</c> action.</summary>
    public const string ExitStatus = "exit-status";

    /// <summary>The CRIU work directory when the options name none.</summary>
    public const string Work = "work";

    /// <summary>The pid of a pod's namespace holder (shim sandboxer), for the delete action after a shim died.</summary>
    public const string HolderPid = "holder.pid";
}
