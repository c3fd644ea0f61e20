using Yarp.ReverseProxy.Forwarder;

namespace Keystone.Proxy;

/// <summary>
/// Tells a target's passive ejection and circuit breaker how a forward went. Only what the target
/// caused counts against it: a client that went away says nothing about the server.
/// </summary>
public static class TargetFeedback
{
    private enum Verdict { Success, Failure, Neutral }

    public static void Report(Target target, CircuitPermit permit, ForwarderError error, int status, bool failOn5xx)
    {
        switch (Judge(error, status, failOn5xx))
        {
            case Verdict.Failure:
                target.Ejection?.RecordFailure();
                target.Breaker?.RecordFailure(permit);
                break;
            case Verdict.Success:
                target.Ejection?.RecordSuccess();
                target.Breaker?.RecordSuccess(permit);
                break;
            default:
                target.Breaker?.Release(permit);
                break;
        }
    }

    private static Verdict Judge(ForwarderError error, int status, bool failOn5xx) => error switch
    {
        ForwarderError.None => failOn5xx && status >= 500 ? Verdict.Failure : Verdict.Success,
        ForwarderError.Request or ForwarderError.RequestTimedOut or ForwarderError.RequestBodyDestination
            or ForwarderError.ResponseBodyDestination or ForwarderError.UpgradeRequestDestination
            or ForwarderError.UpgradeResponseDestination => Verdict.Failure,
        _ => Verdict.Neutral,
    };
}
