//! The registry checks the measures metrics declare: one declaration per name, and only
//! what the records have.

use kpi_core::{
    Aggregate, CustomMeasure, Direction, EventTime, FixedFilter, InputKind, InputSpec, Inputs,
    Measure, MeasuredRecords, Metric, MetricDescriptor, MetricError, Params, Registry,
    RegistryError, Unit, Value,
};

static MEETINGS: CustomMeasure = CustomMeasure {
    name: "test.meetings",
    description: "meetings",
    records: MeasuredRecords::Activities,
    time: EventTime::Occurred,
    aggregate: Aggregate::Count,
    filters: &[FixedFilter::Type("meeting")],
};

/// Another declaration under the same name: calls, not meetings.
static MEETINGS_AGAIN: CustomMeasure = CustomMeasure {
    filters: &[FixedFilter::Type("call")],
    ..MEETINGS
};

/// Activities have no close.
static CLOSED_ACTIVITIES: CustomMeasure = CustomMeasure {
    name: "test.closed_activities",
    time: EventTime::Closed,
    ..MEETINGS
};

macro_rules! reading {
    ($metric:ident, $id:literal, $measure:expr) => {
        struct $metric;
        impl Metric for $metric {
            fn descriptor(&self) -> &'static MetricDescriptor {
                static D: MetricDescriptor = MetricDescriptor {
                    id: $id,
                    name: $id,
                    family: "test",
                    description: "",
                    formula: "n",
                    unit: Unit::Count,
                    direction: Direction::HigherIsBetter,
                    inputs: &[InputSpec::stored("n", "n", InputKind::Count, $measure)],
                    params: &[],
                    dimensions: &[],
                    default_group_by: &[],
                };
                &D
            }
            fn evaluate(&self, inputs: &Inputs, _: &Params) -> Result<Value, MetricError> {
                Ok(Value::Defined(inputs.get("n")?))
            }
        }
    };
}

reading!(Meetings, "test.meetings", Measure::Custom(&MEETINGS));
reading!(
    SameMeetings,
    "test.same_meetings",
    Measure::Custom(&MEETINGS)
);
reading!(
    OtherMeetings,
    "test.other_meetings",
    Measure::Custom(&MEETINGS_AGAIN)
);
reading!(Closed, "test.closed", Measure::Custom(&CLOSED_ACTIVITIES));

#[test]
fn one_declaration_may_be_read_by_several_metrics() {
    let r = Registry::from_metrics([&Meetings as &'static dyn Metric, &SameMeetings]);
    assert_eq!(r.map(|r| r.len()), Ok(2));
}

#[test]
fn two_declarations_under_one_name_are_refused() {
    let r = Registry::from_metrics([&Meetings as &'static dyn Metric, &OtherMeetings]);
    assert_eq!(
        r.unwrap_err(),
        RegistryError::DuplicateMeasure("test.meetings")
    );
}

#[test]
fn a_time_the_records_lack_is_refused() {
    let r = Registry::from_metrics([&Closed as &'static dyn Metric]);
    assert_eq!(
        r.unwrap_err(),
        RegistryError::BadMeasure {
            name: "test.closed_activities",
            reason: "activities have no closed_at".into(),
        }
    );
}
