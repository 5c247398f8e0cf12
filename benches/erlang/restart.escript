#!/usr/bin/env escript
%% Restart latency of an Erlang/OTP supervisor, the baseline for the restart-latency
%% part of benches/supervisor.rs, run on the same machine.
%%
%% A one_for_one supervisor (an intensity it never reaches) runs one permanent
%% gen_server. The child sends itself `first` from init/1 and, on handling it, reports
%% the time to the driver (this script's process). The driver then casts `crash` to it;
%% the child notes the time in a public ets table and crashes with
%% erlang:error(injected). A latency is the time from that crash to the replacement
%% handling its `first`, so the delivery of the cast is not counted. After 1,000
%% warm-up restarts, 20,000 restarts are timed and p50/p99 printed in nanoseconds.
%%
%% Crash and supervisor reports are off (logger's primary level is `none`; SASL is not
%% started), unless `--reports` is given, which leaves the default logger on; its
%% reports then go to standard output, so keep the result with `| grep ^erlang`.
%%
%% The supervisor keeps the time of every restart within its period (one second at
%% least) and scans that list at each restart; so that it stays short, as with a real
%% restart rate, the driver clears it every 64 restarts, outside the timed part.
%%
%% Run from the repository's root:
%%   escript benches/erlang/restart.escript              (one scheduler per core)
%%   ERL_FLAGS="+S 1" escript benches/erlang/restart.escript    (one scheduler)
%%   escript benches/erlang/restart.escript --reports    (crash reports on)
-module(restart).
-mode(compile).
-export([main/1, start_child/1, init/1, handle_call/3, handle_cast/2, handle_info/2]).

-define(WARMUP, 1000).
-define(RESTARTS, 20000).

main(Args) ->
    Reports = lists:member("--reports", Args),
    Reports orelse logger:set_primary_config(level, none),
    ?MODULE = ets:new(?MODULE, [named_table, public]),
    {ok, Sup} = supervisor:start_link(?MODULE, {supervisor, self()}),
    Child = receive {first, _, Pid} -> Pid end,
    {Child1, _} = run(?WARMUP, Sup, Child, []),
    {_, Lat} = run(?RESTARTS, Sup, Child1, []),
    Sorted = list_to_tuple(lists:sort(Lat)),
    io:format("erlang otp=~s schedulers=~b reports=~s restarts=~b p50_ns=~b p99_ns=~b~n",
              [erlang:system_info(otp_release), erlang:system_info(schedulers_online),
               if Reports -> on; true -> off end, ?RESTARTS,
               percentile(Sorted, 0.50), percentile(Sorted, 0.99)]).

%% N restarts of the current child, each latency prepended to Acc.
run(0, _Sup, Child, Acc) ->
    {Child, Acc};
run(N, Sup, Child, Acc) ->
    N rem 64 =:= 0 andalso forget_restarts(Sup),
    gen_server:cast(Child, crash),
    receive
        {first, T1, Next} ->
            [{t0, T0}] = ets:lookup(?MODULE, t0),
            run(N - 1, Sup, Next, [T1 - T0 | Acc])
    end.

%% Empties the supervisor's list of recent restarts (the `restarts` field of its state).
forget_restarts(Sup) ->
    sys:replace_state(Sup, fun(State) -> setelement(8, State, []) end).

%% The same rank as benches/supervisor.rs: round((n - 1) * q).
percentile(Sorted, Q) ->
    element(round((tuple_size(Sorted) - 1) * Q) + 1, Sorted).

%% The supervisor and its child share this module: init/1 tells them apart.
start_child(Driver) ->
    gen_server:start_link(?MODULE, {child, Driver}, []).

init({supervisor, Driver}) ->
    Flags = #{strategy => one_for_one, intensity => 1000000, period => 1},
    Child = #{id => child, start => {?MODULE, start_child, [Driver]}, restart => permanent},
    {ok, {Flags, [Child]}};
init({child, Driver}) ->
    self() ! first,
    {ok, Driver}.

handle_info(first, Driver) ->
    Driver ! {first, erlang:monotonic_time(nanosecond), self()},
    {noreply, Driver}.

handle_cast(crash, _Driver) ->
    ets:insert(?MODULE, {t0, erlang:monotonic_time(nanosecond)}),
    erlang:error(injected).

handle_call(_Request, _From, Driver) ->
    {reply, ok, Driver}.
